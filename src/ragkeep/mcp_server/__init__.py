"""`ragkeep mcp`: the index as tools for MCP clients (Claude Desktop, IDEs, agents).

Nothing is imported here: the MCP SDK is an optional extra, loaded only by
`ragkeep.mcp_server.server`, so that every other command works without it.
"""
