package sqlstore

import (
	"context"
	"database/sql/driver"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgresConnector returns a database/sql connector for PostgreSQL
// through pgx whose connections tell the pool when they are broken. Open
// a *sql.DB for [New] with sql.OpenDB(connector); [Open] uses it.
//
// pgx's own database/sql connection (pgx v5.12) does not implement
// driver.Validator. When a request's context is cancelled during a query,
// pgx closes that connection, but database/sql, which only hears the
// context's error, puts it back in the pool as it is, or hands it
// straight to a request waiting for one. The next request to take it
// gets driver.ErrBadConn, and when a burst of cancellations (a load
// balancer or a client closing many connections at once) leaves several
// such connections, database/sql's two retries can meet broken ones too:
// a request whose own context is fine then fails with "driver: bad
// connection". The connections this connector makes report IsValid, so
// database/sql drops a closed one when it is released.
//
// Code that reaches the driver connection through (*sql.Conn).Raw gets a
// wrapper; its Unwrap method returns pgx's *stdlib.Conn.
func PostgresConnector(dsn string) (driver.Connector, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	return pgConnector{stdlib.GetConnector(*cfg)}, nil
}

type pgConnector struct{ driver.Connector }

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if sc, ok := cn.(*stdlib.Conn); ok {
		return &validatingConn{sc}, nil
	}
	return cn, nil
}

// validatingConn is pgx's connection, every method of it, and IsValid.
type validatingConn struct{ *stdlib.Conn }

var _ driver.Validator = (*validatingConn)(nil)

// IsValid implements driver.Validator: a connection pgx has closed is
// not put back in the pool.
func (c *validatingConn) IsValid() bool { return !c.Conn.Conn().IsClosed() }

// Unwrap returns pgx's connection.
func (c *validatingConn) Unwrap() *stdlib.Conn { return c.Conn }
