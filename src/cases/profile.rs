//! The victim profile of a case: what statistics and data exchange need, as coded values that map to the
//! Human Trafficking Case Data Standard and IOM's CTDC (never free text): sex, age band or birth year,
//! citizenship and country of exploitation (ISO 3166 codes), languages (ISO 639-1), trafficking status,
//! means of control (the CTDC list), recruitment. The name and the region of exploitation are free text and
//! stay sealed under the case's data key. Exploitation types stay the case's own field (triage sets them,
//! an override changes them).
//!
//! A change names only the fields it changes (`null` clears one). A profile that says the person is under
//! 18 makes the case a child case (flags only rise; the focal points are told).

use chrono::{Datelike as _, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::incoming::notify_urgency;
use super::timeline::{self, EventKind};
use super::{CaseError, CaseRow, gate, risk_rank};
use crate::audit::{self, Outcome};
use crate::auth::Staff;
use crate::crypto::{Crypto, FieldContext, RecordKey};
use crate::db::AnyConnection;
use crate::db::schema::{case_profiles, cases};
use crate::domain::CountryCode;
use crate::error::ErrorCode;
use crate::triage::RiskLevel;

macro_rules! codes {
    ($( $(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal),* $(,)? } )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
            pub enum $name { $($variant),* }

            impl $name {
                /// Every code.
                pub const ALL: &'static [$name] = &[$($name::$variant),*];

                /// The stored code.
                pub fn as_str(self) -> &'static str {
                    match self { $($name::$variant => $code),* }
                }

                /// From the stored or requested code.
                pub fn parse(raw: &str) -> Option<$name> {
                    $name::ALL.iter().copied().find(|c| c.as_str() == raw)
                }
            }
        )*
    };
}

codes! {
    /// Sex.
    Sex { Female = "female", Male = "male", Other = "other", Unknown = "unknown" }
    /// CTDC's broad age bands.
    AgeBand {
        From0To8 = "0-8", From9To17 = "9-17", From18To20 = "18-20", From21To23 = "21-23",
        From24To26 = "24-26", From27To29 = "27-29", From30To38 = "30-38", From39To47 = "39-47", From48 = "48+",
    }
    /// Trafficking status (HTCDS `vic_TraffickingStatus`).
    TraffickingStatus {
        Possible = "possible", Presumed = "presumed", Confirmed = "confirmed", NotAVictim = "not_a_victim",
    }
    /// Means of control (CTDC `meansOfControl*`).
    MeansOfControl {
        DebtBondage = "debt_bondage", TakesEarnings = "takes_earnings", Threats = "threats",
        PsychologicalAbuse = "psychological_abuse", PhysicalAbuse = "physical_abuse",
        SexualAbuse = "sexual_abuse", FalsePromises = "false_promises",
        PsychoactiveSubstances = "psychoactive_substances", RestrictsMovement = "restricts_movement",
        RestrictsMedicalCare = "restricts_medical_care", ExcessiveWorkingHours = "excessive_working_hours",
        ThreatOfLawEnforcement = "threat_of_law_enforcement", WithholdsNecessities = "withholds_necessities",
        WithholdsDocuments = "withholds_documents", Other = "other",
    }
    /// How the person was recruited (HTCDS `vic_MethodOfRecruitment`, CTDC `recruiterRelation*`).
    Recruitment {
        JobOffer = "job_offer", OnlineAdvertisement = "online_advertisement", Agency = "agency",
        Acquaintance = "acquaintance", Friend = "friend", FamilyMember = "family_member",
        IntimatePartner = "intimate_partner", Abduction = "abduction", Other = "other",
    }
}

impl AgeBand {
    fn is_minor(self) -> bool {
        matches!(self, AgeBand::From0To8 | AgeBand::From9To17)
    }
}

/// One field's change: keep it, clear it, or set it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Set<T> {
    #[default]
    Keep,
    Clear,
    To(T),
}

/// A change to the profile, every value already parsed into its code.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    pub sex: Set<Sex>,
    pub age_band: Set<AgeBand>,
    pub birth_year: Set<i32>,
    pub citizenship: Set<CountryCode>,
    pub languages: Set<Vec<String>>,
    pub trafficking_status: Set<TraffickingStatus>,
    pub means_of_control: Set<Vec<MeansOfControl>>,
    pub exploitation_country: Set<CountryCode>,
    pub exploitation_region: Set<String>,
    pub recruitment: Set<Vec<Recruitment>>,
    pub name: Set<String>,
}

fn invalid(message: String) -> CaseError {
    CaseError::refused_with(ErrorCode::InvalidProfile, message)
}

fn one<T>(field: &str, value: &Value, parse: impl Fn(&str) -> Option<T>) -> Result<Set<T>, CaseError> {
    match value {
        Value::Null => Ok(Set::Clear),
        Value::String(raw) => parse(raw)
            .map(Set::To)
            .ok_or_else(|| invalid(format!("`{raw}` is not a code of {field}"))),
        _ => Err(invalid(format!("{field} takes a code or null"))),
    }
}

fn list<T: PartialEq>(
    field: &str,
    value: &Value,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Set<Vec<T>>, CaseError> {
    match value {
        Value::Null => Ok(Set::Clear),
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                let Set::To(code) = one(field, item, &parse)? else {
                    return Err(invalid(format!("{field} takes a list of codes")));
                };
                if !out.contains(&code) {
                    out.push(code);
                }
            }
            Ok(Set::To(out))
        }
        _ => Err(invalid(format!("{field} takes a list of codes or null"))),
    }
}

fn text(field: &str, value: &Value, max: usize) -> Result<Set<String>, CaseError> {
    match value {
        Value::Null => Ok(Set::Clear),
        Value::String(raw)
            if !raw.trim().is_empty() && raw.chars().count() <= max && !raw.chars().any(char::is_control) =>
        {
            Ok(Set::To(raw.trim().to_owned()))
        }
        _ => Err(invalid(format!(
            "{field} takes 1 to {max} characters without control characters, or null"
        ))),
    }
}

fn language(raw: &str) -> Option<String> {
    (raw.len() == 2 && raw.chars().all(|c| c.is_ascii_lowercase())).then(|| raw.to_owned())
}

impl ProfileChange {
    /// Parses a JSON object of changes; an unknown field or value is `invalid_profile`.
    pub fn parse(body: &Map<String, Value>) -> Result<ProfileChange, CaseError> {
        let mut change = ProfileChange::default();
        let this_year = Utc::now().year();
        for (field, value) in body {
            match field.as_str() {
                "sex" => change.sex = one(field, value, Sex::parse)?,
                "age_band" => change.age_band = one(field, value, AgeBand::parse)?,
                "birth_year" => {
                    change.birth_year = match value {
                        Value::Null => Set::Clear,
                        Value::Number(n) => match n.as_i64().and_then(|y| i32::try_from(y).ok()) {
                            Some(year) if (1900..=this_year).contains(&year) => Set::To(year),
                            _ => return Err(invalid(format!("birth_year must be 1900 to {this_year}"))),
                        },
                        _ => return Err(invalid("birth_year takes a year or null".to_owned())),
                    }
                }
                "citizenship" => change.citizenship = one(field, value, |c| CountryCode::parse(c).ok())?,
                "languages" => change.languages = list(field, value, language)?,
                "trafficking_status" => {
                    change.trafficking_status = one(field, value, TraffickingStatus::parse)?
                }
                "means_of_control" => change.means_of_control = list(field, value, MeansOfControl::parse)?,
                "exploitation_country" => {
                    change.exploitation_country = one(field, value, |c| CountryCode::parse(c).ok())?
                }
                "exploitation_region" => change.exploitation_region = text(field, value, 200)?,
                "recruitment" => change.recruitment = list(field, value, Recruitment::parse)?,
                "name" => change.name = text(field, value, 200)?,
                other => return Err(invalid(format!("`{other}` is not a field of the profile"))),
            }
        }
        if body.is_empty() {
            return Err(CaseError::refused(ErrorCode::NothingToChange));
        }
        if matches!(change.age_band, Set::To(_)) && matches!(change.birth_year, Set::To(_)) {
            return Err(invalid("give an age band or a birth year, not both".to_owned()));
        }
        Ok(change)
    }
}

fn sealed_place<'a>(column: &'a str, case_id: &'a str) -> FieldContext<'a> {
    FieldContext {
        table: "case_profiles",
        column,
        row_id: case_id,
    }
}

/// A stored profile row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = case_profiles)]
struct ProfileRow {
    sex: Option<String>,
    age_band: Option<String>,
    birth_year: Option<i32>,
    citizenship: Option<String>,
    languages: String,
    trafficking_status: Option<String>,
    means_of_control: String,
    exploitation_country: Option<String>,
    exploitation_region_enc: Option<Vec<u8>>,
    recruitment: String,
    name_enc: Option<Vec<u8>>,
}

/// The profile as shown; `name` and `exploitation_region` only to those who may see the reporter.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub sex: Option<String>,
    pub age_band: Option<String>,
    pub birth_year: Option<i32>,
    pub citizenship: Option<String>,
    pub languages: Vec<String>,
    pub trafficking_status: Option<String>,
    pub means_of_control: Vec<String>,
    pub exploitation_country: Option<String>,
    pub exploitation_region: Option<String>,
    pub recruitment: Vec<String>,
    pub name: Option<String>,
}

fn split(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn case_key(conn: &mut AnyConnection, crypto: &Crypto, case_id: &str) -> Result<RecordKey, CaseError> {
    let (dek, version): (Vec<u8>, i32) = cases::table
        .find(case_id)
        .select((cases::dek_wrapped, cases::key_version))
        .first(conn)?;
    Ok(crypto.unwrap_record_key(&dek, version)?)
}

/// The case's profile, if it has one.
pub fn load(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    case_id: &str,
    shows_identity: bool,
) -> Result<Option<Profile>, CaseError> {
    let Some(row) = case_profiles::table
        .find(case_id)
        .select(ProfileRow::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let open = |conn: &mut AnyConnection,
                column: &str,
                sealed: &Option<Vec<u8>>|
     -> Result<Option<String>, CaseError> {
        match (sealed, shows_identity) {
            (Some(sealed), true) => {
                let key = case_key(conn, crypto, case_id)?;
                Ok(Some(
                    key.open_string(sealed_place(column, case_id), sealed)?
                        .expose()
                        .clone(),
                ))
            }
            _ => Ok(None),
        }
    };
    let name = open(conn, "name_enc", &row.name_enc)?;
    let region = open(conn, "exploitation_region_enc", &row.exploitation_region_enc)?;
    Ok(Some(Profile {
        sex: row.sex,
        age_band: row.age_band,
        birth_year: row.birth_year,
        citizenship: row.citizenship,
        languages: split(&row.languages),
        trafficking_status: row.trafficking_status,
        means_of_control: split(&row.means_of_control),
        exploitation_country: row.exploitation_country,
        exploitation_region: region,
        recruitment: split(&row.recruitment),
        name,
    }))
}

fn apply<T>(set: Set<T>, current: Option<T>) -> Option<T> {
    match set {
        Set::Keep => current,
        Set::Clear => None,
        Set::To(value) => Some(value),
    }
}

fn joined<T>(set: Set<Vec<T>>, current: String, code: impl Fn(&T) -> String) -> String {
    match set {
        Set::Keep => current,
        Set::Clear => String::new(),
        Set::To(values) => values.iter().map(code).collect::<Vec<_>>().join(","),
    }
}

/// Changes the victim profile of a case (`update_case`); returns it as the caller may see it.
pub fn set_profile(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    staff: &Staff,
    case: &str,
    change: ProfileChange,
) -> Result<Option<Profile>, CaseError> {
    let opened = gate::for_change(conn, staff, case, "case_profile_updated")?;
    let case = opened.case;
    let current = case_profiles::table
        .find(&case.id)
        .select(ProfileRow::as_select())
        .first(conn)
        .optional()?;
    let key = case_key(conn, crypto, &case.id)?;
    let seal =
        |column: &str, set: Set<String>, current: Option<Vec<u8>>| -> Result<Option<Vec<u8>>, CaseError> {
            Ok(match set {
                Set::Keep => current,
                Set::Clear => None,
                Set::To(text) => Some(key.seal_str(sealed_place(column, &case.id), &text)?),
            })
        };
    let changed: Vec<&str> = [
        ("sex", change.sex != Set::Keep),
        ("age_band", change.age_band != Set::Keep),
        ("birth_year", change.birth_year != Set::Keep),
        ("citizenship", change.citizenship != Set::Keep),
        ("languages", change.languages != Set::Keep),
        ("trafficking_status", change.trafficking_status != Set::Keep),
        ("means_of_control", change.means_of_control != Set::Keep),
        ("exploitation_country", change.exploitation_country != Set::Keep),
        ("exploitation_region", change.exploitation_region != Set::Keep),
        ("recruitment", change.recruitment != Set::Keep),
        ("name", change.name != Set::Keep),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect();
    let row = current.unwrap_or(ProfileRow {
        sex: None,
        age_band: None,
        birth_year: None,
        citizenship: None,
        languages: String::new(),
        trafficking_status: None,
        means_of_control: String::new(),
        exploitation_country: None,
        exploitation_region_enc: None,
        recruitment: String::new(),
        name_enc: None,
    });
    let age_band = apply(
        change.age_band.clone(),
        row.age_band.as_deref().and_then(AgeBand::parse),
    );
    let birth_year = apply(change.birth_year.clone(), row.birth_year);
    let values = (
        case_profiles::sex.eq(apply(change.sex, row.sex.as_deref().and_then(Sex::parse)).map(Sex::as_str)),
        case_profiles::age_band.eq(age_band.map(AgeBand::as_str)),
        case_profiles::birth_year.eq(birth_year),
        case_profiles::citizenship.eq(match change.citizenship {
            Set::Keep => row.citizenship.clone(),
            Set::Clear => None,
            Set::To(code) => Some(code.as_str().to_owned()),
        }),
        case_profiles::languages.eq(joined(change.languages, row.languages.clone(), |l| l.clone())),
        case_profiles::trafficking_status.eq(apply(
            change.trafficking_status,
            row.trafficking_status
                .as_deref()
                .and_then(TraffickingStatus::parse),
        )
        .map(TraffickingStatus::as_str)),
        case_profiles::means_of_control.eq(joined(
            change.means_of_control,
            row.means_of_control.clone(),
            |m| m.as_str().to_owned(),
        )),
        case_profiles::exploitation_country.eq(match change.exploitation_country {
            Set::Keep => row.exploitation_country.clone(),
            Set::Clear => None,
            Set::To(code) => Some(code.as_str().to_owned()),
        }),
        case_profiles::exploitation_region_enc.eq(seal(
            "exploitation_region_enc",
            change.exploitation_region,
            row.exploitation_region_enc.clone(),
        )?),
        case_profiles::recruitment.eq(joined(change.recruitment, row.recruitment.clone(), |r| {
            r.as_str().to_owned()
        })),
        case_profiles::name_enc.eq(seal("name_enc", change.name, row.name_enc.clone())?),
        case_profiles::updated_by.eq(Some(staff.user_id.as_str())),
        case_profiles::updated_at.eq(Utc::now().naive_utc()),
    );
    let exists: i64 = case_profiles::table
        .filter(case_profiles::case_id.eq(&case.id))
        .count()
        .get_result(conn)?;
    if exists == 0 {
        diesel::insert_into(case_profiles::table)
            .values((
                case_profiles::case_id.eq(&case.id),
                case_profiles::organization_id.eq(&case.organization_id),
                values,
            ))
            .execute(conn)?;
    } else {
        diesel::update(case_profiles::table.find(&case.id))
            .set(values)
            .execute(conn)?;
    }
    let minor =
        age_band.is_some_and(AgeBand::is_minor) || birth_year.is_some_and(|y| Utc::now().year() - y < 18);
    if minor && !case.child_victim {
        become_child_case(conn, &case)?;
    }
    let facts = json!({ "fields": changed, "child_victim": minor || case.child_victim });
    timeline::add(
        conn,
        &case
            .event(EventKind::ProfileUpdated)
            .by(&staff.user_id)
            .data(facts.clone()),
    )?;
    audit::record(
        conn,
        &staff.audit(
            "case_profile_updated",
            Some("case"),
            Some(&case.id),
            Outcome::Success,
            Some(facts),
        ),
    )?;
    load(conn, crypto, &case.id, opened.access.shows_reporter())
}

/// A person said the victim is under 18: a child case, at least high risk, the focal points told.
fn become_child_case(conn: &mut AnyConnection, case: &CaseRow) -> Result<(), CaseError> {
    let risk = case.risk_level().max(RiskLevel::High);
    diesel::update(cases::table.find(&case.id))
        .set((
            cases::child_victim.eq(true),
            cases::risk.eq(risk.as_str()),
            cases::risk_rank.eq(risk_rank(risk)),
            cases::updated_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)?;
    notify_urgency(conn, &case.id, false, true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_values_are_refused() {
        for band in AgeBand::ALL {
            assert_eq!(AgeBand::parse(band.as_str()), Some(*band));
        }
        for means in MeansOfControl::ALL {
            assert_eq!(MeansOfControl::parse(means.as_str()), Some(*means));
        }
        let body = json!({ "sex": "female", "means_of_control": ["withholds_documents", "debt_bondage"] });
        let change = ProfileChange::parse(body.as_object().unwrap_or(&Map::new())).map_err(|e| e.to_string());
        assert!(change.is_ok());
        for bad in [
            json!({ "sex": "f" }),
            json!({ "age_band": "10-20" }),
            json!({ "citizenship": "Kazakhstan" }),
            json!({ "means_of_control": "threats" }),
            json!({ "birth_year": 1800 }),
            json!({ "name": "" }),
            json!({ "favourite_colour": "blue" }),
            json!({ "age_band": "18-20", "birth_year": 2000 }),
            json!({}),
        ] {
            assert!(
                ProfileChange::parse(bad.as_object().unwrap_or(&Map::new())).is_err(),
                "{bad}"
            );
        }
    }
}
