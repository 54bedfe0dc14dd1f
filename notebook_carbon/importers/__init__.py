"""Runs measured by other tools, imported into the registry so earlier work counts in the totals.

``codecarbon``         codecarbon's ``emissions.csv``: read and check a file, then record its runs
                       through the registry's public API (``Registry.get_run``, ``record_run``)
``codecarbon_rows``    one row checked against the run bounds and converted, or rejected (pure)
``codecarbon_fields``  the fields of a row: numbers within bounds, times, names, region, uid (pure)
"""
