"""Audit trail: queries over the immutable log (``queries``) and its hash chain (``verify``)."""
