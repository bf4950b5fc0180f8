"""Meta tests: the suites themselves judged (kill matrices, parallel and data-path verdicts)."""
