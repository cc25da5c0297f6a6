"""Intake: takes citizens' reports, tips and officer requests, and police actions on them."""
