"""The GraphQL evidence layer: one graphene schema over Bitbucket, resolved through DataLoaders."""
