//! The provider list, the webhook actions each one posts to, and its voice capabilities.
//!
//! The service mounts `/webhooks/{provider}/{channel_id}/{action}`; [`Provider::slug`] and
//! [`Action::slug`] are those path segments. They are part of Komek's public contract (the
//! operator pastes these URLs into each provider's console), so they never change.

use std::fmt;
use std::str::FromStr;

/// An SMS or voice provider Komek can talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// capcom6 "SMS Gateway for Android" (local or cloud mode), an Android phone with a local SIM.
    Capcom6,
    /// Twilio Programmable Messaging and Voice.
    Twilio,
    /// Vonage (Nexmo) SMS API and Voice API.
    Vonage,
    /// Africa's Talking SMS and Voice.
    AfricasTalking,
    /// Infobip SMS.
    Infobip,
    /// Jasmin SMS gateway (HTTP in front of SMPP).
    Jasmin,
    /// Ushahidi SMSSync Android app.
    Smssync,
    /// FreeSWITCH `mod_httapi` (on-premise IVR over a SIP trunk or GSM gateway).
    Freeswitch,
}

/// What a webhook request is about; the last path segment of a webhook URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Inbound SMS (`sms`).
    Sms,
    /// Delivery report of an SMS Komek sent (`status`).
    Status,
    /// A call arrives (`voice`): the provider asks what to do; answer with [`crate::render_ivr`].
    Voice,
    /// Call progress and hangup notifications (`voice-status`); answer with [`crate::ack`].
    VoiceStatus,
    /// The result of an IVR step (digits, recording, dial result) at an `action_url` Komek put
    /// in an [`crate::IvrStep`] (`ivr`); answer with [`crate::render_ivr`].
    Ivr,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 5] = [
        Action::Sms,
        Action::Status,
        Action::Voice,
        Action::VoiceStatus,
        Action::Ivr,
    ];

    /// URL path segment.
    pub fn slug(self) -> &'static str {
        match self {
            Action::Sms => "sms",
            Action::Status => "status",
            Action::Voice => "voice",
            Action::VoiceStatus => "voice-status",
            Action::Ivr => "ivr",
        }
    }

    /// True for the actions whose answer drives a call (render it with [`crate::render_ivr`]).
    pub fn expects_ivr(self) -> bool {
        matches!(self, Action::Voice | Action::Ivr)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

/// An unknown provider or action path segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} (expected one of: {expected})")]
pub struct UnknownName {
    what: &'static str,
    expected: &'static str,
}

impl UnknownName {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        "unknown_name"
    }
}

impl FromStr for Action {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.slug() == s)
            .ok_or(UnknownName {
                what: "webhook action",
                expected: "sms, status, voice, voice-status, ivr",
            })
    }
}

/// Voice languages Twilio `<Say>` speaks (basic and Polly voices; Kazakh, Kyrgyz, Uzbek and Tajik
/// are absent, so those prompts must be recorded audio). Source: mailroom's copy of Twilio's list.
const TWILIO_LANGS: &[&str] = &[
    "en-US", "en-GB", "en-AU", "en-CA", "en-IN", "ru-RU", "uk-UA", "tr-TR", "de-DE", "fr-FR", "fr-CA",
    "es-ES", "es-MX", "it-IT", "pt-BR", "pt-PT", "pl-PL", "nl-NL", "sv-SE", "nb-NO", "da-DK", "fi-FI",
    "ca-ES", "ja-JP", "ko-KR", "zh-CN", "zh-HK", "zh-TW",
];

/// A conservative subset of Vonage text-to-speech languages (no Central Asian language).
const VONAGE_LANGS: &[&str] = &[
    "en-US", "en-GB", "en-AU", "en-IN", "ru-RU", "uk-UA", "tr-TR", "de-DE", "fr-FR", "es-ES", "es-MX",
    "it-IT", "pt-BR", "pt-PT", "pl-PL", "nl-NL", "sv-SE", "ja-JP", "ko-KR", "zh-CN",
];

/// Africa's Talking `<Say>` reads English only.
const AT_LANGS: &[&str] = &["en-US"];

/// FreeSWITCH speaks through `mod_flite` (English) unless the deployment adds another engine.
const FREESWITCH_LANGS: &[&str] = &["en-US"];

impl Provider {
    /// Every provider.
    pub const ALL: [Provider; 8] = [
        Provider::Capcom6,
        Provider::Twilio,
        Provider::Vonage,
        Provider::AfricasTalking,
        Provider::Infobip,
        Provider::Jasmin,
        Provider::Smssync,
        Provider::Freeswitch,
    ];

    /// Every provider, in a stable order.
    pub fn all() -> &'static [Provider] {
        &Self::ALL
    }

    /// URL path segment (`capcom6`, `twilio`, `vonage`, `africastalking`, `infobip`, `jasmin`,
    /// `smssync`, `freeswitch`).
    pub fn slug(self) -> &'static str {
        match self {
            Provider::Capcom6 => "capcom6",
            Provider::Twilio => "twilio",
            Provider::Vonage => "vonage",
            Provider::AfricasTalking => "africastalking",
            Provider::Infobip => "infobip",
            Provider::Jasmin => "jasmin",
            Provider::Smssync => "smssync",
            Provider::Freeswitch => "freeswitch",
        }
    }

    /// Human name for consoles and docs.
    pub fn display_name(self) -> &'static str {
        match self {
            Provider::Capcom6 => "SMS Gateway for Android (capcom6)",
            Provider::Twilio => "Twilio",
            Provider::Vonage => "Vonage",
            Provider::AfricasTalking => "Africa's Talking",
            Provider::Infobip => "Infobip",
            Provider::Jasmin => "Jasmin SMS gateway",
            Provider::Smssync => "Ushahidi SMSSync",
            Provider::Freeswitch => "FreeSWITCH mod_httapi",
        }
    }

    /// The actions Komek mounts for this provider.
    pub fn actions(self) -> &'static [Action] {
        use Action::*;
        match self {
            Provider::Capcom6 | Provider::Infobip | Provider::Jasmin => &[Sms, Status],
            Provider::Twilio | Provider::Vonage => &[Sms, Status, Voice, VoiceStatus, Ivr],
            Provider::AfricasTalking => &[Sms, Status, Voice, Ivr],
            Provider::Smssync => &[Sms],
            Provider::Freeswitch => &[Voice, Ivr],
        }
    }

    /// The action path segments Komek mounts for this provider (see [`Provider::actions`]).
    pub fn webhook_actions(self) -> &'static [&'static str] {
        match self {
            Provider::Capcom6 | Provider::Infobip | Provider::Jasmin => &["sms", "status"],
            Provider::Twilio | Provider::Vonage => &["sms", "status", "voice", "voice-status", "ivr"],
            Provider::AfricasTalking => &["sms", "status", "voice", "ivr"],
            Provider::Smssync => &["sms"],
            Provider::Freeswitch => &["voice", "ivr"],
        }
    }

    /// The actions an operator pastes into the provider's console (the `ivr` URLs are generated
    /// by Komek inside its IVR replies and never pasted).
    pub fn console_actions(self) -> &'static [Action] {
        use Action::*;
        match self {
            Provider::Capcom6 | Provider::Infobip | Provider::Jasmin => &[Sms, Status],
            Provider::Twilio | Provider::Vonage => &[Sms, Status, Voice, VoiceStatus],
            Provider::AfricasTalking => &[Sms, Status, Voice],
            Provider::Smssync => &[Sms],
            Provider::Freeswitch => &[Voice],
        }
    }

    /// Whether Komek mounts `action` for this provider.
    pub fn supports(self, action: Action) -> bool {
        self.actions().contains(&action)
    }

    /// Whether this provider drives phone calls (has an IVR renderer).
    pub fn has_voice(self) -> bool {
        matches!(
            self,
            Provider::Twilio | Provider::Vonage | Provider::AfricasTalking | Provider::Freeswitch
        )
    }

    /// Whether [`crate::SmsSender`] can send SMS through this provider.
    pub fn can_send_sms(self) -> bool {
        matches!(
            self,
            Provider::Capcom6
                | Provider::Twilio
                | Provider::Vonage
                | Provider::AfricasTalking
                | Provider::Infobip
                | Provider::Jasmin
        )
    }

    /// Whether one `Dial` step may carry several numbers rung one after another. Where this is
    /// false (Twilio, Vonage) dial one number per step and move on from the `DialResult`.
    pub fn dials_in_order(self) -> bool {
        matches!(self, Provider::AfricasTalking | Provider::Freeswitch)
    }

    fn languages(self) -> &'static [&'static str] {
        match self {
            Provider::Twilio => TWILIO_LANGS,
            Provider::Vonage => VONAGE_LANGS,
            Provider::AfricasTalking => AT_LANGS,
            Provider::Freeswitch => FREESWITCH_LANGS,
            _ => &[],
        }
    }

    /// Whether the provider's text-to-speech speaks `lang` (a BCP 47 tag such as `ru-RU`, or a
    /// bare language such as `ru`; case-insensitive). Kazakh, Kyrgyz, Uzbek and Tajik are spoken
    /// by none of them: those prompts must be recorded audio.
    pub fn speaks(self, lang: &str) -> bool {
        self.voice_language(lang).is_some()
    }

    /// The provider's own tag for `lang`, if it speaks it (`ru` → `ru-RU` on Twilio).
    pub fn voice_language(self, lang: &str) -> Option<&'static str> {
        let langs = self.languages();
        if let Some(exact) = langs.iter().find(|l| l.eq_ignore_ascii_case(lang)) {
            return Some(exact);
        }
        if !lang.contains('-') && !lang.is_empty() {
            return langs.iter().copied().find(|l| {
                l.split('-')
                    .next()
                    .is_some_and(|primary| primary.eq_ignore_ascii_case(lang))
            });
        }
        None
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

impl FromStr for Provider {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|p| p.slug() == s)
            .ok_or(UnknownName {
                what: "provider",
                expected: "capcom6, twilio, vonage, africastalking, infobip, jasmin, smssync, freeswitch",
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn slugs_round_trip() {
        for p in Provider::all() {
            assert_eq!(p.slug().parse::<Provider>().unwrap(), *p);
            let slugs: Vec<&str> = p.actions().iter().map(|a| a.slug()).collect();
            assert_eq!(slugs, p.webhook_actions());
            for a in p.console_actions() {
                assert!(p.supports(*a));
            }
        }
        for a in Action::ALL {
            assert_eq!(a.slug().parse::<Action>().unwrap(), a);
        }
        assert!("nexmo".parse::<Provider>().is_err());
    }

    #[test]
    fn languages() {
        assert!(Provider::Twilio.speaks("ru-RU"));
        assert_eq!(Provider::Twilio.voice_language("ru"), Some("ru-RU"));
        assert!(!Provider::Twilio.speaks("kk-KZ"));
        assert!(!Provider::Twilio.speaks("ky"));
        assert!(Provider::AfricasTalking.speaks("en"));
        assert!(!Provider::AfricasTalking.speaks("ru-RU"));
        assert!(!Provider::Capcom6.speaks("en-US"));
    }
}
