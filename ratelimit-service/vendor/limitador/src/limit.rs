use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Debug;
use std::hash::{Hash, Hasher};

mod cel;

pub use cel::{Context, Expression, Predicate};
pub use cel::{EvaluationError, ParseError};

#[derive(Debug, Hash, Eq, PartialEq, Clone, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Namespace(String);

impl From<&str> for Namespace {
    fn from(s: &str) -> Namespace {
        Self(s.into())
    }
}

impl AsRef<str> for Namespace {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

impl From<String> for Namespace {
    fn from(s: String) -> Self {
        Self(s)
    }
}

#[derive(Eq, Debug, Clone, Serialize, Deserialize)]
pub struct Limit {
    #[serde(skip_serializing, default)]
    id: Option<String>,
    namespace: Namespace,
    #[serde(skip_serializing, default)]
    max_value: u64,
    seconds: u64,
    #[serde(skip_serializing, default)]
    name: Option<String>,

    // Need to sort to generate the same object when using the JSON as a key or
    // value in Redis.
    conditions: BTreeSet<Predicate>,
    variables: BTreeSet<Expression>,
}

impl Limit {
    pub fn new<N: Into<Namespace>>(
        namespace: N,
        max_value: u64,
        seconds: u64,
        conditions: impl IntoIterator<Item = Predicate>,
        variables: impl IntoIterator<Item = Expression>,
    ) -> Self
    where
        <N as TryInto<Namespace>>::Error: Debug,
    {
        Self {
            id: None,
            namespace: namespace.into(),
            max_value,
            seconds,
            name: None,
            conditions: conditions.into_iter().collect(),
            variables: variables.into_iter().collect(),
        }
    }

    pub fn with_id<S: Into<String>, N: Into<Namespace>>(
        id: S,
        namespace: N,
        max_value: u64,
        seconds: u64,
        conditions: impl IntoIterator<Item = Predicate>,
        variables: impl IntoIterator<Item = Expression>,
    ) -> Self {
        Self {
            id: Some(id.into()),
            namespace: namespace.into(),
            max_value,
            seconds,
            name: None,
            conditions: conditions.into_iter().collect(),
            variables: variables.into_iter().collect(),
        }
    }

    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    pub fn max_value(&self) -> u64 {
        self.max_value
    }

    pub fn seconds(&self) -> u64 {
        self.seconds
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn set_name(&mut self, name: String) {
        self.name = Some(name)
    }

    pub fn set_max_value(&mut self, value: u64) {
        self.max_value = value;
    }

    pub fn conditions(&self) -> HashSet<String> {
        self.conditions
            .iter()
            .map(|cond| cond.clone().into())
            .collect()
    }

    pub fn variables(&self) -> HashSet<String> {
        self.variables
            .iter()
            .map(|var| var.source().into())
            .collect()
    }

    pub fn resolve_variables(
        &self,
        ctx: &Context,
    ) -> Result<Option<BTreeMap<String, String>>, EvaluationError> {
        let mut map = BTreeMap::new();
        for variable in &self.variables {
            let name = variable.source().into();
            match variable.eval(ctx)? {
                None => return Ok(None),
                Some(value) => {
                    map.insert(name, value);
                }
            }
        }
        Ok(Some(map))
    }

    pub fn has_variable(&self, var: &str) -> bool {
        self.variables
            .iter()
            .flat_map(|v| v.variables())
            .any(|v| v.as_str() == var)
    }

    pub fn applies(&self, ctx: &Context) -> bool {
        let ctx = ctx.for_limit(self);
        let all_conditions_apply = self
            .conditions
            .iter()
            .all(|predicate| predicate.test(&ctx.for_limit(self)).unwrap());

        let all_vars_are_set = self.variables.iter().all(|var| {
            ctx.has_variables(
                &var.variables()
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<&str>>(),
            )
        });

        all_conditions_apply && all_vars_are_set
    }
}

impl Hash for Limit {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.namespace.hash(state);
        self.seconds.hash(state);
        self.conditions.iter().for_each(|e| e.hash(state));
        self.variables.iter().for_each(|e| e.hash(state));
    }
}

impl PartialOrd for Limit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Limit {
    fn cmp(&self, other: &Self) -> Ordering {
        match self.namespace.cmp(&other.namespace) {
            Ordering::Equal => match self.seconds.cmp(&other.seconds) {
                Ordering::Equal => match self.conditions.cmp(&other.conditions) {
                    Ordering::Equal => self.variables.cmp(&other.variables),
                    cmp => cmp,
                },
                cmp => cmp,
            },
            cmp => cmp,
        }
    }
}

impl PartialEq for Limit {
    fn eq(&self, other: &Self) -> bool {
        self.namespace == other.namespace
            && self.seconds == other.seconds
            && self.conditions == other.conditions
            && self.variables == other.variables
    }
}
