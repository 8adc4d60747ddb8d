"""One module per dataset schema, each turning one raw record into a :class:`Problem`.

Every module exposes `matches(record)` (does this record look like my schema?) and
`to_problem(record)` (raising :class:`BadRecord` when it cannot), so the loader can detect a
file's format and report a bad record without knowing any schema itself.
"""
