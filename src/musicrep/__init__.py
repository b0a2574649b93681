"""musicrep: learn and evaluate music audio representations when labelled data is scarce."""

__version__ = "0.1.0"
