"""The benchmarks behind `make bench`: one JSON object of figures, with the command that produced them."""
