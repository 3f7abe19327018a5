"""devhost: the local stand-in for the Azure Functions host (HTTP and timer triggers, a Durable backend
on Postgres, a Web PubSub emulator). A development tool: never deployed, never imported by the app."""
