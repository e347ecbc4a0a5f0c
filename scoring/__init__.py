"""T/CFA 0308011.5-2024 as data, Table C.1, and the scorer."""
