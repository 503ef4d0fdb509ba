"""API serializers, one module a resource: they check the shape of input and render output; every rule lives
in a service.

Input serializers end in `In`, query-string filters in `Query`; the rest render rows. The fields every
resource shares (amounts, ids, text, kinds) and the one error shape are in `common`.
"""
