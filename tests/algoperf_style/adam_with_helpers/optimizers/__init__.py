"""A helper package beside the submission, imported by its own name (``from optimizers.adam import ...``)."""
