"""The deadlines service: starts, warns on, and closes the politigarantier and local targets of each case."""
