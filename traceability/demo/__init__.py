"""The demo world `make run` loads: a Romoss-like recall, from material lots to consignees."""
