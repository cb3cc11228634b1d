//! Flows (NiFi's process groups): source topic → transform chain → routes → sinks.
