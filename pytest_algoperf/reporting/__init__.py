"""What a session shows and writes: the live progress line, the summary table, JSON and CSV files."""
