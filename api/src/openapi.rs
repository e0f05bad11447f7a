//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::OpenApi;

use crate::problem::{FieldError, ProblemDocument};
use crate::routes::{auth, channels, events, health, public, streams, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "livechat", description = "Event-sourced live-chat backend. Errors are RFC 7807 problem documents."),
    paths(
        health::healthz,
        health::readyz,
        events::list,
        streams::list,
        openapi_json,
        public::init,
        public::widget,
        public::loader,
        public::chat_page,
        auth::token,
        users::create,
        users::list,
        users::show,
        users::update,
        users::password,
        users::deactivate,
        users::reactivate,
        users::me,
        users::update_me,
        users::status,
        channels::dashboard,
        channels::create,
        channels::form,
        channels::rename,
        channels::archive,
        channels::options,
        channels::reset_colors,
        channels::add_operator,
        channels::create_operator,
        channels::remove_operator,
        channels::add_rule,
        channels::update_rule,
        channels::remove_rule,
        channels::reorder_rules,
        channels::join,
        channels::leave,
        channels::presence
    ),
    components(schemas(
        ProblemDocument,
        FieldError,
        events::EventSchema,
        events::EventPage,
        streams::StreamPage,
        projections::stream_index::StreamSummary,
        projections::ProjectorHealth,
        auth::TokenRequest,
        auth::TokenResponse,
        users::NewUser,
        users::ProfilePatch,
        users::PasswordChange,
        users::StatusChange,
        users::UserPage,
        projections::users::UserSummary,
        public::InitResponse,
        public::InitRule,
        public::InitAction,
        public::InitChatbot,
        public::WidgetOptions,
        public::WidgetSnippet,
        channels::Dashboard,
        channels::ChannelCard,
        channels::ChannelForm,
        channels::OperatorEntry,
        channels::NewChannel,
        channels::Rename,
        channels::OperatorRef,
        channels::RuleOrder,
        channels::Membership,
        channels::Presence
    ))
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
