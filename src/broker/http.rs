pub(crate) struct GenericBroker;
