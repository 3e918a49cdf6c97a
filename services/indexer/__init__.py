"""The indexer: RabbitMQ video events into MongoDB and Elasticsearch (``python -m services.indexer``)."""
