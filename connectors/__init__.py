"""Built-in connector plugins (http, sql, file), registered through the `syncline.connectors` entry points."""
