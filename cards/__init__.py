"""Card templates (Jinja, rendered by synth_datasets.card); installed as package data synth_datasets/cards."""
