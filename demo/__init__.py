"""`make demo`: the system running with simulated traffic from the 10 kommuner."""
