"""The PostgreSQL + pgvector backend (docs/scale-out.md): many processes and machines on one
database. Needs the `postgres` extra (psycopg, psycopg-pool, pgvector)."""
