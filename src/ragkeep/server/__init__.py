"""`ragkeep serve`: the HTTP API and the web page over the same services as the CLI.

FastAPI is imported only here and below, so no other command pays for it.
"""
