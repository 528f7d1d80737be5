"""Multi-community normative harvest."""
