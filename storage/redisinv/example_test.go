package redisinv_test

import (
	"context"
	"log"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-go/gatehouse/apikey"
	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
	"github.com/gatehouse-go/gatehouse/storage/redisinv"
)

// Each instance of a deployment whose store is an adapter of its own
// (here the memory store stands for it) gives its API-key manager and
// OAuth provider one Invalidator over the Redis the instances share: a
// key or token revoked on one instance is refused by every other at once.
// (Not run: it needs a Redis.)
func ExampleNew() {
	ctx := context.Background()
	var store storage.Store = memory.New() // your adapter
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	inv, err := redisinv.New(rdb, redisinv.Config{Channel: "myapp:invalidate"})
	if err != nil {
		log.Fatal(err)
	}
	defer inv.Close()

	keys, err := apikey.New(store, apikey.Config{Invalidator: inv})
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close(ctx)
	provider, err := oauth.New(store, oauth.Config{Issuer: "https://api.example.com", Secret: []byte("at least thirty-two bytes of secret!!"), Invalidator: inv})
	if err != nil {
		log.Fatal(err)
	}
	defer provider.Close()
	_ = provider.Handler() // mount /oauth/… and serve as usual
}
