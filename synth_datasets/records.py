"""Ground-truth records sampled from a schema, consistent by construction and checked one by one.

The schema is a JSON Schema (or a pydantic model, through `model_json_schema()`), read with the
standard keywords (`type`, `properties`, `required`, `enum`, `minimum`/`maximum`, `multipleOf`,
`format: date`, `minItems`/`maxItems`, local `$ref`s as pydantic writes them) and a few `x-` ones
that say where values come from and how they hang together:

| keyword | on | meaning |
|---|---|---|
| `x-faker` | string | a Faker provider (`company`, `name`, `city`, `street_address`, ...), in the schema's locale |
| `x-pool` | string | a named list of values: the seed rows' own entities of that label, or a list in the recipe |
| `x-values` | any | a list to draw from (like `enum`, but not a constraint) |
| `x-range` | date | `[first, last]` ISO dates; `x-after: {field, days: [min, max]}` follows a sibling date |
| `x-formula` | number | computed from siblings once they are drawn: `quantity * unit_price`, `sum(lines.total)` |
| `x-rules` | object | expressions that must hold on every record (`due_date >= invoice_date`) |
| `x-choose` | object | `[min, max]`: how many of its optional properties a record has (else about half) |
| `x-label` | any | the entity label of the value's spans (default: its path without list indices) |
| `x-forms` | number, date | the surface forms a document may write it in (see `surface_forms`) |

Where a field has several sources (`x-pool` and `x-faker`), each record draws from one of them at
random. Dates are drawn from fixed ranges, never from "today", so a seed gives the same records on
any day. Money is computed in `Decimal` and rounded to the field's `multipleOf`, so that
`line total == quantity x unit price` holds to the cent.
"""

from __future__ import annotations

import ast
import copy
import datetime as dt
import operator
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Mapping, Sequence


class SchemaError(ValueError):
    """A schema the sampler cannot use; the message names the field and the fix."""


@dataclass(frozen=True)
class Leaf:
    """One value of a record: where it is (`path`), its span label, the value and its kind."""

    path: str
    label: str
    value: Any
    kind: str  # "string", "integer", "number", "date", "boolean"


# ------------------------------------------------------------------ expressions (a safe subset)

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
            ast.GtE: operator.ge}
_FUNCTIONS = {"sum": lambda xs: sum(xs, Decimal(0)), "len": lambda xs: Decimal(len(xs)), "min": min, "max": max,
              "abs": abs}


def _number(v):
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float)):
        return Decimal(str(v))
    return v


def evaluate(expression: str, scope: Mapping[str, Any]) -> Any:
    """`expression` over the fields of one object: names, `a.b` over a list of objects (the list of
    their `b`s), + - * / on numbers, comparisons, and/or/not, numbers, strings, sum/len/min/max/abs.
    Numbers are Decimals; ISO dates are strings, which compare in date order (four-digit years).
    Anything else is refused; an expression that fails (a division by zero) raises SchemaError."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as err:
        raise SchemaError(f"cannot parse the expression {expression!r}: {err.msg}") from None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
            return _number(node.value)
        if isinstance(node, ast.Name):
            if node.id not in scope:
                raise SchemaError(f"{expression!r}: no field {node.id!r} here (fields: {sorted(scope)})")
            return _number(scope[node.id])
        if isinstance(node, ast.Attribute):
            base = ev(node.value)
            if isinstance(base, list):
                if not all(isinstance(item, dict) for item in base):
                    raise SchemaError(f"{expression!r}: {ast.unparse(node.value)} is not a list of objects")
                return [_number(item.get(node.attr)) for item in base]
            if isinstance(base, dict):
                return _number(base.get(node.attr))
            raise SchemaError(f"{expression!r}: {ast.unparse(node.value)} has no fields")
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = ev(node.left), ev(node.right)
            if not (isinstance(left, Decimal) and isinstance(right, Decimal)):
                raise SchemaError(f"{expression!r}: arithmetic needs numbers, got {left!r} and {right!r}")
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
            value = ev(node.operand)
            return -value if isinstance(node.op, ast.USub) else not value
        if isinstance(node, ast.BoolOp):
            values = [ev(v) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare):
            left = ev(node.left)
            for op, right_node in zip(node.ops, node.comparators):
                right = ev(right_node)
                if type(op) not in _COMPARE or not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords:
            return _FUNCTIONS[node.func.id](*[ev(a) for a in node.args])
        raise SchemaError(f"{expression!r}: {ast.unparse(node)!r} is not allowed (names, a.b, + - * /, comparisons, "
                          "and/or/not, sum/len/min/max/abs)")

    try:
        return ev(tree)
    except (ArithmeticError, TypeError) as err:  # Decimal division by zero, comparing a date with a number
        raise SchemaError(f"{expression!r}: {type(err).__name__}: {err}") from None


# ------------------------------------------------------------------ surface forms

# English month names from a table: strftime's %B follows the process locale, so a seed could give
# other forms on another machine
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
DATE_FORMS = {
    "iso": lambda d: d.isoformat(),  # 2024-03-05
    "us": lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}",  # 03/05/2024
    "eu": lambda d: f"{d.day:02d}/{d.month:02d}/{d.year}",  # 05/03/2024
    "dots": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",  # 05.03.2024
    "long": lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",  # March 5, 2024
    "day_month": lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",  # 5 March 2024
    "short": lambda d: f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}",  # 5 Mar 2024
}


def _grouped(value: Decimal, places: int, thousands: str, decimal: str) -> str:
    text = f"{abs(value):,.{places}f}"  # 1,200.00
    whole, _, frac = text.partition(".")
    out = whole.replace(",", thousands) + (decimal + frac if places else "")
    return ("-" if value < 0 else "") + out


def money_forms(value, currency: str = "USD", symbol: str = "$") -> dict[str, str]:
    v = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return {
        "plain": f"{v:.2f}",  # 1200.00
        "thousands": _grouped(v, 2, ",", "."),  # 1,200.00
        "symbol": f"{symbol}{_grouped(v, 2, ',', '.')}",  # $1,200.00
        "code": f"{_grouped(v, 2, ',', '.')} {currency}",  # 1,200.00 USD
        "code_plain": f"{v:.2f} {currency}",  # 1200.00 USD
        "whole_code": f"{v.normalize():f} {currency}" if v == v.to_integral() else f"{v:.2f} {currency}",  # 1200 USD
        "eu": f"{_grouped(v, 2, '.', ',')} €" if currency == "EUR" else _grouped(v, 2, ".", ","),  # 1.200,00
    }


def surface_forms(leaf: Leaf, schema: Mapping[str, Any] | None = None) -> list[str]:
    """The ways a document may write `leaf`'s value, the canonical one first; `x-forms` in its schema
    narrows them to the named ones."""
    schema = schema or {}
    wanted = schema.get("x-forms")
    if leaf.kind == "date":
        d = dt.date.fromisoformat(str(leaf.value))
        forms = {name: f(d) for name, f in DATE_FORMS.items()}
    elif leaf.kind == "number" and schema.get("x-money", False):
        forms = money_forms(leaf.value, schema.get("x-currency", "USD"), schema.get("x-symbol", "$"))
    elif leaf.kind in ("number", "integer"):
        v = Decimal(str(leaf.value))
        places = max(0, -v.as_tuple().exponent) if isinstance(leaf.value, float) or leaf.kind == "number" else 0
        forms = {"plain": f"{v:.{places}f}", "thousands": _grouped(v, places, ",", ".")}
    else:
        forms = {"plain": str(leaf.value)}
    names = list(forms) if not wanted else [w for w in wanted if w in forms]
    if wanted and len(names) != len(wanted):
        raise SchemaError(f"{leaf.path}: x-forms {wanted} names unknown forms; known: {sorted(forms)}")
    out: list[str] = []
    for n in names:
        if forms[n] not in out:
            out.append(forms[n])
    return out


# ------------------------------------------------------------------ the sampler


class RecordSchema:
    """Samples records from a JSON Schema with `x-` value sources, and checks them."""

    def __init__(self, schema: Mapping[str, Any], locale: str = "en_US", pools: Mapping[str, Sequence[str]] | None = None,
                 max_tries: int = 50):
        self.schema = copy.deepcopy(dict(schema))
        self.defs = self.schema.get("$defs", self.schema.get("definitions", {}))
        self.locale = locale
        self.pools = {k: list(v) for k, v in (pools or {}).items()}
        self.max_tries = max_tries
        self._faker = None
        root = self._resolve(self.schema)
        if root.get("type", "object") != "object" or "properties" not in root:
            raise SchemaError("schema: the top level must be an object with properties")
        self._validate_sources(root, "")

    @classmethod
    def from_pydantic(cls, model, **kwargs) -> "RecordSchema":
        return cls(model.model_json_schema(), **kwargs)

    # -- schema walking
    def _resolve(self, node: Mapping[str, Any]) -> dict:
        node = dict(node)
        while "$ref" in node:
            ref = node.pop("$ref")
            prefix = "#/$defs/" if ref.startswith("#/$defs/") else "#/definitions/"
            if not ref.startswith(prefix) or ref[len(prefix):] not in self.defs:
                raise SchemaError(f"schema: cannot resolve $ref {ref!r} (only local #/$defs/... refs)")
            node = {**self.defs[ref[len(prefix):]], **node}
        if "anyOf" in node:  # pydantic's Optional[X]: anyOf [X, null]
            options = [o for o in node["anyOf"] if o.get("type") != "null"]
            if len(options) == 1:
                node = {**{k: v for k, v in node.items() if k != "anyOf"}, **self._resolve(options[0])}
        return node

    def _kind(self, node: Mapping[str, Any], path: str) -> str:
        t = node.get("type")
        if t == "string" and node.get("format") == "date":
            return "date"
        if t in ("string", "integer", "number", "boolean", "object", "array"):
            return t
        if "enum" in node or "x-values" in node:
            return "string"
        raise SchemaError(f"{path or 'schema'}: type {t!r} is not supported; use string, integer, number, boolean, "
                          "object, array (or string with format: date)")

    def _validate_sources(self, node: Mapping[str, Any], path: str) -> None:
        node = self._resolve(node)
        kind = self._kind(node, path)
        if kind == "object":
            for name, sub in node.get("properties", {}).items():
                self._validate_sources(sub, f"{path}.{name}" if path else name)
            for rule in node.get("x-rules", []):
                ast.parse(rule, mode="eval")
        elif kind == "array":
            if "items" not in node:
                raise SchemaError(f"{path}: an array needs `items`")
            self._validate_sources(node["items"], f"{path}[]")
        elif "x-pool" in node and node["x-pool"] not in self.pools:
            raise SchemaError(f"{path}: x-pool {node['x-pool']!r} is not a known pool; known: {sorted(self.pools)} "
                              "(pools come from the seed rows' entities or the recipe's `pools`)")
        elif kind == "string" and not any(k in node for k in ("enum", "x-values", "x-pool", "x-faker", "const")):
            raise SchemaError(f"{path}: a string needs a value source: enum, x-values, x-pool or x-faker")

    # -- sampling
    def faker(self):
        if self._faker is None:
            from faker import Faker

            self._faker = Faker(self.locale)
        return self._faker

    def sample(self, rng: random.Random, include: Sequence[str] = ()) -> dict:
        """One record whose rules hold (redrawn up to `max_tries` times; then a SchemaError names the
        rule that never held). `include`: top-level properties the record must have, among
        `optional_fields()`; the others are chosen as usual, `x-choose` counting these among its fields."""
        include = tuple(include)
        if include:
            can = self.optional_fields()
            unknown = [n for n in include if n not in can]
            if unknown:
                raise SchemaError(f"cannot make a record include {unknown}: not an optional top-level property with "
                                  f"one value and values to draw (those are {sorted(can)})")
            most = self._resolve(self.schema).get("x-choose", [0, len(can)])[1]
            if len(set(include)) > most:
                raise SchemaError(f"cannot make a record include {len(set(include))} fields: x-choose allows {most}")
        last: list[str] = []
        for _ in range(self.max_tries):
            record = self._draw(self.schema, "", rng, include)
            last = self.problems(record) + [f"{n} is missing" for n in include if n not in record]
            if not last:
                return record
        raise SchemaError(f"no record satisfied the schema in {self.max_tries} draws: {'; '.join(last)}")

    def _draw(self, node, path: str, rng: random.Random, include: Sequence[str] = ()):
        node = self._resolve(node)
        kind = self._kind(node, path)
        if "const" in node:
            return node["const"]
        if kind == "object":
            return self._draw_object(node, path, rng, include)
        if kind == "array":
            low, high = node.get("minItems", 1), node.get("maxItems", max(node.get("minItems", 1), 3))
            return [self._draw(node["items"], f"{path}[]", rng) for _ in range(rng.randint(low, high))]
        if kind == "boolean":
            return rng.random() < 0.5
        sources = self._sources(node)
        if kind == "date" and not sources:
            first, last = (dt.date.fromisoformat(x) for x in node.get("x-range", ["2023-01-01", "2025-12-31"]))
            return (first + dt.timedelta(days=rng.randint(0, (last - first).days))).isoformat()
        if kind in ("integer", "number") and not sources:
            low, high = node.get("minimum", 0), node.get("maximum", 1000 if kind == "number" else 100)
            if kind == "integer":
                return rng.randint(int(low), int(high))
            step = Decimal(str(node.get("multipleOf", "0.01")))
            steps = int((Decimal(str(high)) - Decimal(str(low))) / step)
            return float(Decimal(str(low)) + step * rng.randint(0, steps))
        source = rng.choice(sources)
        if source in ("enum", "x-values"):
            return rng.choice(node[source])
        if source == "x-pool":
            return rng.choice(self.pools[node["x-pool"]])
        fake = self.faker()
        fake.seed_instance(rng.getrandbits(32))
        provider = node["x-faker"]
        name, args = (provider, {}) if isinstance(provider, str) else (provider["provider"], provider.get("args", {}))
        try:
            value = getattr(fake, name)(**args)
        except AttributeError:
            raise SchemaError(f"{path}: x-faker {name!r} is not a Faker provider") from None
        return str(value).replace("\n", ", ")

    def _sources(self, node) -> list[str]:
        """The value sources of a leaf that have values (an empty pool is none)."""
        return [k for k in ("enum", "x-values", "x-pool", "x-faker") if k in node
                and not (k == "x-pool" and not self.pools.get(node["x-pool"]))]

    def _drawable(self, node) -> bool:
        node = self._resolve(node)
        kind = self._kind(node, "")
        return kind != "string" or "const" in node or bool(self._sources(node))

    def _draw_object(self, node, path: str, rng: random.Random, include: Sequence[str] = ()) -> dict:
        props = node.get("properties", {})
        required = set(node.get("required", []))
        for name in required:
            if name in props and not self._drawable(props[name]):
                where = f"{path}.{name}" if path else name
                raise SchemaError(f"{where}: required, and its pool is empty; give the pool values (seed rows with "
                                  "that entity, or task.pools) or make the field optional")
        # an optional field whose only pool is empty is left out (a draw of seeds without that entity)
        optional = [n for n in props if n not in required and "x-formula" not in self._resolve(props[n])
                    and self._drawable(props[n])]
        forced = set(include)  # checked by sample(): optional top-level fields
        rest = [n for n in optional if n not in forced]
        if "x-choose" in node:
            low, high = node["x-choose"]
            chosen = forced | set(rng.sample(rest, max(0, min(len(rest), rng.randint(low, high) - len(forced)))))
        else:
            chosen = forced | {n for n in rest if rng.random() < 0.5}
        out: dict[str, Any] = {}
        formulas, afters = [], []
        for name, sub in props.items():
            sub_r = self._resolve(sub)
            where = f"{path}.{name}" if path else name
            if "x-formula" in sub_r:
                formulas.append((name, sub_r))
            elif name in required or name in chosen:
                if "x-after" in sub_r:
                    afters.append((name, sub_r))
                else:
                    out[name] = self._draw(sub_r, where, rng)
        for name, sub in afters:
            after = sub["x-after"]
            anchor = out.get(after["field"])
            if anchor is None:
                continue
            low, high = after.get("days", [1, 30])
            out[name] = (dt.date.fromisoformat(anchor) + dt.timedelta(days=rng.randint(low, high))).isoformat()
        for name, sub in formulas:  # after every drawn field, in schema order (a formula may use an earlier one)
            try:
                value = evaluate(sub["x-formula"], out)
            except SchemaError as err:
                where = f"{path}.{name}" if path else name
                raise SchemaError(f"{where}: x-formula cannot be computed on this record ({err}); a formula may "
                                  "only use required fields") from None
            out[name] = self._round(value, sub)
        return {name: out[name] for name in props if name in out}

    @staticmethod
    def _round(value, node):
        if isinstance(value, Decimal):
            if node.get("type") == "integer":
                return int(value.to_integral_value(rounding=ROUND_HALF_UP))
            step = Decimal(str(node.get("multipleOf", "0.01")))
            return float((value / step).to_integral_value(rounding=ROUND_HALF_UP) * step)
        return value

    # -- checking
    def problems(self, record: Mapping[str, Any]) -> list[str]:
        """Why `record` does not hold: JSON Schema validation errors, formulas that do not recompute
        to the stored value, rules that are false. Empty when it holds."""
        import jsonschema

        validator = jsonschema.Draft202012Validator(self._plain_schema())
        out = [f"{'.'.join(map(str, e.absolute_path)) or 'record'}: {e.message}" for e in validator.iter_errors(record)]
        out += self._check(self.schema, record, "")
        return out

    def _plain_schema(self) -> dict:
        """The schema without `multipleOf` on floats (0.1 + 0.2 style noise makes it unreliable);
        rounding is checked by the sampler itself."""
        def strip(node):
            if isinstance(node, dict):
                return {k: strip(v) for k, v in node.items() if k != "multipleOf"}
            if isinstance(node, list):
                return [strip(v) for v in node]
            return node
        return strip(self.schema)

    def _check(self, node, value, path: str) -> list[str]:
        node = self._resolve(node)
        out: list[str] = []
        kind = self._kind(node, path)
        if kind == "object" and isinstance(value, dict):
            props = node.get("properties", {})
            for name, sub in props.items():
                sub_r = self._resolve(sub)
                where = f"{path}.{name}" if path else name
                if name in value:
                    out += self._check(sub_r, value[name], where)
                if "x-formula" in sub_r and name in value:
                    try:
                        expected = self._round(evaluate(sub_r["x-formula"], value), sub_r)
                    except SchemaError as err:
                        out.append(f"{where}: {err}")
                        continue
                    if abs(Decimal(str(expected)) - Decimal(str(value[name]))) > Decimal("0.000001"):
                        out.append(f"{where} is {value[name]}, but {sub_r['x-formula']} gives {expected}")
                if "x-after" in sub_r and name in value and sub_r["x-after"]["field"] in value:
                    if value[name] < value[sub_r["x-after"]["field"]]:
                        out.append(f"{where} {value[name]} is before {sub_r['x-after']['field']}")
            for rule in node.get("x-rules", []):
                try:
                    ok = evaluate(rule, value)
                except (SchemaError, KeyError):
                    ok = False
                if not ok:
                    out.append(f"{path or 'record'}: rule {rule!r} does not hold")
        elif kind == "array" and isinstance(value, list):
            for i, item in enumerate(value):
                out += self._check(node["items"], item, f"{path}[{i}]")
        return out

    def optional_fields(self, drawable: bool = True) -> dict[str, str]:
        """The top-level optional properties with one value each (not an object, list, yes/no, formula
        or date that follows another field) and their span labels: what `sample(include=...)` can force.
        `drawable=False` lists them also when their pool is empty (no seed row had that entity)."""
        root = self._resolve(self.schema)
        required = set(root.get("required", []))
        out: dict[str, str] = {}
        for name, sub in root.get("properties", {}).items():
            node = self._resolve(sub)
            if name in required or "x-formula" in node or "x-after" in node or "const" in node:
                continue
            if self._kind(node, name) in ("object", "array", "boolean") or (drawable and not self._drawable(node)):
                continue
            out[name] = node.get("x-label", name)
        return out

    def labels(self) -> list[str]:
        """The span labels of every leaf the schema can produce, in schema order."""
        out: list[str] = []

        def walk(node, label_path):
            node = self._resolve(node)
            kind = self._kind(node, label_path)
            if kind == "object":
                for name, sub in node.get("properties", {}).items():
                    walk(sub, f"{label_path}.{name}" if label_path else name)
            elif kind == "array":
                walk(node["items"], label_path)
            else:
                label = node.get("x-label", label_path)
                if label not in out:
                    out.append(label)

        walk(self.schema, "")
        return out

    def written(self, record: Mapping[str, Any]) -> dict:
        """`record` with every number and date as its first surface form (money with two decimals:
        297.30, not 297.3), as a prompt shows it."""
        def walk(node, value, path):
            node = self._resolve(node)
            kind = self._kind(node, path)
            if kind == "object":
                return {k: walk(node["properties"][k], v, f"{path}.{k}") for k, v in value.items()}
            if kind == "array":
                return [walk(node["items"], v, path) for v in value]
            if kind in ("number", "date") and node.get("x-money", kind == "date"):
                return surface_forms(Leaf(path, path, value, kind), node)[0]
            return value

        return walk(self.schema, record, "")

    # -- leaves
    def leaves(self, record: Mapping[str, Any]) -> list[tuple[Leaf, dict]]:
        """Every value of `record` with its schema node, in schema order."""
        out: list[tuple[Leaf, dict]] = []

        def walk(node, value, path, label_path):
            node = self._resolve(node)
            kind = self._kind(node, path)
            if kind == "object":
                for name, sub in node.get("properties", {}).items():
                    if name in value:
                        walk(sub, value[name], f"{path}.{name}" if path else name,
                             f"{label_path}.{name}" if label_path else name)
            elif kind == "array":
                for i, item in enumerate(value):
                    walk(node["items"], item, f"{path}[{i}]", label_path)
            else:
                out.append((Leaf(path, node.get("x-label", label_path), value, kind), node))

        walk(self.schema, record, "", "")
        return out
