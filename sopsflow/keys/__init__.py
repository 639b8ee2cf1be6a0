"""Master keys: one module per key type (age, pgp, kms, hcvault, opaque),
the metadata-entry registry and the key-group logic.

Nothing is imported here so that loading one key type never pulls in the
heavy libraries (boto3, hvac, pyrage) of the others.
"""
