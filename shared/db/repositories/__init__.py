"""SQL, one module per aggregate: named statements and the functions that run them.

Each function takes the connection (or `Tx`) it runs on and returns typed rows (`shared.db.rows`);
no decision is taken here (that is the services'), and nothing here builds SQL from user text:
where a statement is composed, it is from constants of this package (the `# noqa: S608` lines).
"""
