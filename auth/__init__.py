"""Login and rights: token validation, the embedded identity provider, roles, masking, audit."""
