{{/* Cache invalidations on SQLite, where several processes may share one
file (a server and the admin command, say): every Invalidate adds a row,
and every store that listens reads the rows after the last one it saw.
Rows are kept ten minutes. PostgreSQL carries invalidations with NOTIFY
and has no such table. */}}
{{- if .SQLite}}
CREATE TABLE {{.P}}invalidations (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  topic TEXT NOT NULL,
  item TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
{{- end}}
