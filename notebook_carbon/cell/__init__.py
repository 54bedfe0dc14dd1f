"""The cell's own logic, before it runs: its ``%%carbon`` arguments, its fingerprints and the
redundancy verdict.

Pure computation over the cell's text and the values it reads; the one registry lookup the verdict
needs is asked of the caller, so this package imports neither the registry nor the session.
"""
