"""Load tests of the suite with ghz: ``make bench`` (see bench/README.md)."""
