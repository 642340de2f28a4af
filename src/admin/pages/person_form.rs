//! The user and team forms: name, for a user an e-mail address and a team,
//! and the same limits and limits per model as a key. Reading a form checks
//! every field before anything changes; errors stand next to their fields.

use super::key_form::{read_limits, stored_limits, typed_limits};
use super::names::Names;
use super::{alert_fields, model_limits, Form};
use crate::admin::keys::FieldError;
use crate::admin::people::{self, PeopleError};
use crate::domain::alerts::SoftLimits;
use crate::domain::limits::Limits;
use crate::domain::people::{check_model_limits, Budget, ModelLimit};
use crate::store::{StoreError, TeamRecord, UserRecord};

/// A user's or team's form as typed or as stored.
pub struct PersonForm {
    pub(super) name: String,
    pub(super) email: String,
    /// The user's team's id as text; empty for none.
    pub(super) team_id: String,
    /// Every team as (id, name, selected); only the user form shows them.
    pub(super) team_options: Vec<(i64, String, bool)>,
    pub(super) limits: Vec<(&'static str, &'static str, String)>,
    pub(super) alerts: Vec<alert_fields::AlertField>,
    pub(super) model_limits: String,
    pub(super) errors: Vec<FieldError>,
}

/// What a checked form says.
pub struct Person {
    pub name: String,
    pub email: Option<String>,
    pub team_id: Option<i64>,
    pub limits: Limits,
    pub model_limits: Vec<ModelLimit>,
    /// `None` when the form has no alert fields.
    pub alerts: Option<SoftLimits>,
}

impl PersonForm {
    pub(super) fn error_for(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    fn stored(name: &str, limits: &Limits, models: &[Budget], alerts: &SoftLimits) -> PersonForm {
        PersonForm {
            name: name.to_owned(),
            email: String::new(),
            team_id: String::new(),
            team_options: vec![],
            limits: stored_limits(limits),
            alerts: alert_fields::stored(alerts),
            model_limits: model_limits::to_text(models),
            errors: vec![],
        }
    }

    pub fn blank() -> PersonForm {
        PersonForm::stored("", &Limits::default(), &[], &SoftLimits::default())
    }

    pub fn of_user(u: &UserRecord) -> PersonForm {
        PersonForm {
            email: u.email.clone().unwrap_or_default(),
            team_id: u.team_id.map(|t| t.to_string()).unwrap_or_default(),
            ..PersonForm::stored(&u.name, &u.own.limits, &u.models, &u.alerts)
        }
    }

    pub fn of_team(t: &TeamRecord) -> PersonForm {
        PersonForm::stored(&t.name, &t.own.limits, &t.models, &t.alerts)
    }

    fn typed(form: &Form, errors: Vec<FieldError>) -> PersonForm {
        PersonForm {
            name: form.get("name").to_owned(),
            email: form.get("email").to_owned(),
            team_id: form.get("team_id").trim().to_owned(),
            team_options: vec![],
            limits: typed_limits(form),
            alerts: alert_fields::typed(form),
            model_limits: form.get("model_limits").to_owned(),
            errors,
        }
    }

    /// The form back with one more error, as after a refused change.
    pub fn refused(form: &Form, error: PeopleError) -> Result<PersonForm, PeopleError> {
        let error = match error {
            PeopleError::Invalid(e) => e,
            PeopleError::Store(StoreError::Conflict(message)) => FieldError::new("name", message),
            other => return Err(other),
        };
        Ok(PersonForm::typed(form, vec![error]))
    }

    /// Fills the team field's choices, marking the form's team.
    pub fn with_teams(mut self, teams: &Names) -> PersonForm {
        self.team_options = teams.options(self.team_id.parse().ok());
        self
    }
}

/// The value, or `None` with its error kept.
fn keep<T>(checked: Result<T, FieldError>, errors: &mut Vec<FieldError>) -> Option<T> {
    checked.map_err(|e| errors.push(e)).ok()
}

/// Checks every field of a user's or team's form.
pub fn read(form: &Form) -> Result<Person, Box<PersonForm>> {
    let mut errors = vec![];
    let name = keep(people::name(form.get("name")), &mut errors);
    let email = keep(people::email(Some(form.get("email"))), &mut errors).flatten();
    let team_id = match form.get("team_id").trim() {
        "" => None,
        text => keep(
            text.parse::<i64>().map_err(|_| FieldError::new("team_id", format!("'{text}' is not a team"))),
            &mut errors,
        ),
    };
    let limits = read_limits(form, &mut errors);
    let alerts = alert_fields::read(form, &mut errors);
    let entries = model_limits::parse(form.get("model_limits")).and_then(|e| check_model_limits(&e));
    let entries = keep(entries.map_err(|m| FieldError::new("model_limits", m)), &mut errors);
    match (name, entries) {
        (Some(name), Some(model_limits)) if errors.is_empty() => {
            Ok(Person { name, email, team_id, limits, model_limits, alerts })
        }
        _ => Err(Box::new(PersonForm::typed(form, errors))),
    }
}
