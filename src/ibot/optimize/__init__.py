"""Parameter search: Optuna studies over declared parameters, out-of-sample checks, the HTML report."""
