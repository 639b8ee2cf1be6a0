"""One module per CLI command; ``sopsflow.main`` wires them into argparse."""
