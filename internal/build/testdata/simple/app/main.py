app module
