//! One module per provider: credentials format, verification, parsing, rendering and sending
//! for that provider's wire format, and nothing else.

pub mod africastalking;
pub mod capcom6;
pub mod freeswitch;
pub mod infobip;
pub mod jasmin;
pub mod smssync;
pub mod twilio;
pub mod vonage;
