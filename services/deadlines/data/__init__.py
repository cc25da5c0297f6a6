"""Deadline rules files: the district's default (politigarantier.yaml) and the demo's in minutes (demo-minutes.yaml)."""
