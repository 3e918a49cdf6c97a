// MongoDB's healthcheck in docker-compose.yml (run by mongosh inside the mongodb container).
// Idempotent: the first run initiates the single-node replica set rs0 (the services connect with
// ?replicaSet=rs0 and need it for sessions and change streams); later runs only check. Exits 0 only
// while this node is the writable primary, so `service_healthy` means "ready for writes".
try {
  rs.status();
} catch (error) {
  if (error.codeName !== "NotYetInitialized") {
    throw error;
  }
  rs.initiate({ _id: "rs0", members: [{ _id: 0, host: "mongodb:27017" }] });
}
if (!db.hello().isWritablePrimary) {
  quit(1);
}
