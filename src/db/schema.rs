//! The diesel table definitions, kept by hand so that they use only the SQL types both backends share
//! (`Text`, `Binary`, `Bool`, `Integer`, `BigInt`, `Timestamp`). They mirror `migrations/*/up.sql`;
//! the migration tests fail if a table here and a migration disagree.

diesel::table! {
    organizations (id) {
        id -> Text,
        slug -> Text,
        name -> Text,
        country -> Nullable<Text>,
        kind -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        organization_id -> Text,
        email -> Text,
        display_name -> Nullable<Text>,
        role -> Text,
        child_protection_trained -> Bool,
        on_duty -> Bool,
        language -> Text,
        password_hash -> Text,
        password_changed_at -> Timestamp,
        must_change_password -> Bool,
        totp_secret_enc -> Nullable<Binary>,
        totp_dek -> Nullable<Binary>,
        totp_key_version -> Nullable<Integer>,
        totp_last_step -> Nullable<BigInt>,
        security_stamp -> Text,
        disabled_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    channels (id) {
        id -> Text,
        organization_id -> Text,
        provider -> Text,
        number -> Nullable<Text>,
        language -> Text,
        secret_enc -> Nullable<Binary>,
        secret_dek -> Nullable<Binary>,
        key_version -> Nullable<Integer>,
        enabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    contacts (id) {
        id -> Text,
        organization_id -> Text,
        address_kind -> Text,
        address_index -> Nullable<Text>,
        address_enc -> Nullable<Binary>,
        name_enc -> Nullable<Binary>,
        safe_contact_enc -> Nullable<Binary>,
        dek_wrapped -> Binary,
        key_version -> Integer,
        first_seen_at -> Timestamp,
        last_seen_at -> Timestamp,
    }
}

diesel::table! {
    cases (id) {
        id -> Text,
        organization_id -> Text,
        reference -> Text,
        status -> Text,
        risk -> Text,
        risk_rank -> Integer,
        exploitation_types -> Text,
        child_victim -> Bool,
        shelter_needed -> Bool,
        silent -> Bool,
        language -> Nullable<Text>,
        contact_id -> Nullable<Text>,
        assignee_id -> Nullable<Text>,
        follow_up_code_hash -> Nullable<Text>,
        dek_wrapped -> Binary,
        key_version -> Integer,
        sla_due_at -> Nullable<Timestamp>,
        acknowledged_at -> Nullable<Timestamp>,
        acknowledged_by -> Nullable<Text>,
        closed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        sla_notified_at -> Nullable<Timestamp>,
        closure_reason -> Nullable<Text>,
        merged_into -> Nullable<Text>,
    }
}

diesel::table! {
    reports (id) {
        id -> Text,
        organization_id -> Text,
        channel_id -> Nullable<Text>,
        source -> Text,
        provider -> Nullable<Text>,
        provider_event_id -> Nullable<Text>,
        contact_id -> Nullable<Text>,
        case_id -> Nullable<Text>,
        body_enc -> Nullable<Binary>,
        details_enc -> Nullable<Binary>,
        dek_wrapped -> Binary,
        key_version -> Integer,
        triage_status -> Text,
        triage -> Nullable<Text>,
        collapsed_into -> Nullable<Text>,
        received_at -> Timestamp,
        created_at -> Timestamp,
        part_group -> Nullable<Text>,
        part_index -> Nullable<Integer>,
        part_total -> Nullable<Integer>,
        ivr_path -> Nullable<Text>,
    }
}

diesel::table! {
    case_events (id) {
        id -> Text,
        case_id -> Text,
        organization_id -> Text,
        kind -> Text,
        actor_user_id -> Nullable<Text>,
        report_id -> Nullable<Text>,
        data -> Nullable<Text>,
        body_enc -> Nullable<Binary>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    consents (id) {
        id -> Text,
        organization_id -> Text,
        contact_id -> Nullable<Text>,
        case_id -> Nullable<Text>,
        purpose -> Text,
        granted -> Bool,
        source -> Text,
        recorded_by -> Nullable<Text>,
        recorded_at -> Timestamp,
        withdrawn_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        organization_id -> Nullable<Text>,
        kind -> Text,
        topic -> Text,
        payload -> Text,
        payload_enc -> Nullable<Binary>,
        dek_wrapped -> Nullable<Binary>,
        key_version -> Nullable<Integer>,
        dedupe_key -> Nullable<Text>,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_by -> Nullable<Text>,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        case_id -> Nullable<Text>,
        recipient_user_id -> Nullable<Text>,
    }
}

diesel::table! {
    notification_recipients (id) {
        id -> Text,
        organization_id -> Text,
        topic -> Text,
        user_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        at -> Timestamp,
        organization_id -> Nullable<Text>,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        action -> Text,
        target_kind -> Nullable<Text>,
        target_id -> Nullable<Text>,
        outcome -> Text,
        details -> Nullable<Text>,
        request_id -> Nullable<Text>,
        prev_hash -> Text,
        hash -> Text,
    }
}

// Staff sessions and refresh tokens (migration 2026-11-22-000002_auth).
diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        organization_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        session_id -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    calls (id) {
        id -> Text,
        organization_id -> Text,
        channel_id -> Text,
        provider -> Text,
        provider_call_id -> Text,
        step -> Text,
        seq -> Integer,
        language -> Text,
        menu_path -> Text,
        menu_plays -> Integer,
        no_input -> Integer,
        roster_kind -> Nullable<Text>,
        dial_index -> Integer,
        dial_outcome -> Nullable<Text>,
        contact_id -> Nullable<Text>,
        details_enc -> Nullable<Binary>,
        dek_wrapped -> Binary,
        key_version -> Integer,
        report_id -> Nullable<Text>,
        hangup_cause -> Nullable<Text>,
        duration_secs -> Nullable<Integer>,
        started_at -> Timestamp,
        updated_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    duty_rosters (id) {
        id -> Text,
        organization_id -> Text,
        kind -> Text,
        numbers_enc -> Binary,
        dek_wrapped -> Binary,
        key_version -> Integer,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    call_recordings (id) {
        id -> Text,
        call_id -> Text,
        audio_enc -> Binary,
        content_type -> Nullable<Text>,
        size_bytes -> BigInt,
        dek_wrapped -> Binary,
        key_version -> Integer,
        created_at -> Timestamp,
    }
}

diesel::table! {
    case_profiles (case_id) {
        case_id -> Text,
        organization_id -> Text,
        sex -> Nullable<Text>,
        age_band -> Nullable<Text>,
        birth_year -> Nullable<Integer>,
        citizenship -> Nullable<Text>,
        languages -> Text,
        trafficking_status -> Nullable<Text>,
        means_of_control -> Text,
        exploitation_country -> Nullable<Text>,
        exploitation_region_enc -> Nullable<Binary>,
        recruitment -> Text,
        name_enc -> Nullable<Binary>,
        updated_by -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(users -> organizations (organization_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(channels -> organizations (organization_id));
diesel::joinable!(contacts -> organizations (organization_id));
diesel::joinable!(cases -> organizations (organization_id));
diesel::joinable!(cases -> contacts (contact_id));
diesel::joinable!(reports -> channels (channel_id));
diesel::joinable!(reports -> cases (case_id));
diesel::joinable!(case_events -> cases (case_id));
diesel::joinable!(calls -> channels (channel_id));
diesel::joinable!(call_recordings -> calls (call_id));
diesel::joinable!(notification_recipients -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    organizations,
    users,
    channels,
    contacts,
    cases,
    reports,
    case_events,
    consents,
    outbox,
    audit_log,
    notification_recipients,
    sessions,
    refresh_tokens,
    calls,
    duty_rosters,
    call_recordings,
    case_profiles,
);
