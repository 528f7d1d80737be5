"""EMPO: a robot that softly maximises human power."""
