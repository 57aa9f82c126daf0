"""The errors a user can fix: each message names the field, what came, and what to do."""


class RecipeError(ValueError):
    """A recipe field is missing, unknown or of the wrong kind; the message says how to fix it."""


class DataError(RecipeError):
    """Real data that cannot be used as the recipe asks (missing file, no rows, a missing column)."""
