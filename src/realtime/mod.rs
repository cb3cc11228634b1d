//! Real-time fan-out: the channel hub, change-feed watchers and Pusher signing.
