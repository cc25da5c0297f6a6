"""Deadline rules files: the district's default (politigarantier.yaml) and one in seconds for tests."""
