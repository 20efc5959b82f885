"""The API's routes, one module per area: query, library (documents, sources, uploads, jobs),
admin (status, flags, caches, doctor) and health."""
