"""Parameter search: Optuna studies over a strategy's declared parameters, out-of-sample checks, the HTML
report."""
