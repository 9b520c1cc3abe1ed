//! Scheduled (every minute): closes connections whose token expired, asks API
//! Gateway about those not seen for a while, forgets the gone ones.
chat::scheduled_function!(|s| chat::sweep::run(&s.store, &s.pusher, &s.config));
