//! The tenant a connector is bound to.

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::table::TableType;

/// The tenant of a connector: one user, and for archival and recall memory one agent.
///
/// Every operation of a connector is confined to its scope — reads, counts, updates and
/// deletes by id included. A record of another tenant reads as not found, and no filter can
/// widen the scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope {
    user_id: Uuid,
    agent_id: Option<Uuid>,
}

impl Scope {
    /// A scope of one user's agent (for archival and recall memory).
    pub fn agent(user_id: Uuid, agent_id: Uuid) -> Self {
        Scope {
            user_id,
            agent_id: Some(agent_id),
        }
    }

    /// A scope of one user (for passages and documents).
    pub fn user(user_id: Uuid) -> Self {
        Scope {
            user_id,
            agent_id: None,
        }
    }

    /// The user.
    pub fn user_id(&self) -> Uuid {
        self.user_id
    }

    /// The agent, when the scope has one.
    pub fn agent_id(&self) -> Option<Uuid> {
        self.agent_id
    }

    /// Checks that this scope fits `table`: archival and recall memory need an agent;
    /// passages and documents belong to a user ([`Scope::user`]). Passages do carry an
    /// `agent_id` column, but an agent scope on that table is refused rather than applied
    /// to some statements only: select one agent's passages with a
    /// [`Filter`](crate::Filter) on [`Column::AgentId`](crate::Column::AgentId).
    pub fn check_for(&self, table: TableType) -> Result<()> {
        if table.is_agent_scoped() && self.agent_id.is_none() {
            return Err(Error::invalid(
                "scope",
                format!("{table} is scoped to one agent: build the scope with Scope::agent"),
            ));
        }
        if table == TableType::Documents && self.agent_id.is_some() {
            return Err(Error::invalid(
                "scope",
                format!("{table} has no agent column: build the scope with Scope::user"),
            ));
        }
        if table == TableType::Passages && self.agent_id.is_some() {
            return Err(Error::invalid(
                "scope",
                format!(
                    "{table} is scoped to one user: build the scope with Scope::user and \
                     select an agent's passages with Filter::eq(Column::AgentId, agent)"
                ),
            ));
        }
        Ok(())
    }

    /// Checks that a record owned by `user_id` / `agent_id` lies inside this scope.
    pub fn check_owner(&self, user_id: Uuid, agent_id: Option<Uuid>) -> Result<()> {
        if user_id != self.user_id {
            return Err(Error::invalid(
                "user_id",
                format!(
                    "record belongs to user {user_id}, connector is scoped to user {}",
                    self.user_id
                ),
            ));
        }
        if let Some(scope_agent) = self.agent_id {
            if agent_id != Some(scope_agent) {
                return Err(Error::invalid(
                    "agent_id",
                    format!(
                        "record belongs to agent {}, connector is scoped to agent {scope_agent}",
                        agent_id.map_or_else(|| "none".to_owned(), |a| a.to_string())
                    ),
                ));
            }
        }
        Ok(())
    }
}
