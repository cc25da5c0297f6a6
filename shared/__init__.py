"""The project's shared package: event models, reference data and the plumbing every service uses."""
