"""The course platform's analytics in MongoDB: `user_activity` (test completions with words
per minute and accuracy, lesson views, ...), by day of `createdAt`."""
